#define BOOST_TEST_MODULE pixtream tracker
#include <boost/test/unit_test.hpp>
